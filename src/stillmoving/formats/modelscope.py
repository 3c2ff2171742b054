"""ModelScope/ZeroScope files as released outside diffusers, refused with where to get the diffusers layout.

ModelScope's own release (`damo-vilab/modelscope-damo-text-to-video-synthesis`: `text2video_pytorch_model.pth`,
`VQGAN_autoencoder.pth`, `open_clip_pytorch_model.bin`, `configuration.json`) and ZeroScope's files for the A1111
text2video extension keep the UNet in ModelScope's own key layout (`input_blocks.*`, temporal convolutions named
`temopral_conv` (sic)). diffusers 0.42 has no converter for it: `UNet3DConditionModel` has no `from_single_file`
(it is not in `SINGLE_FILE_LOADABLE_CLASSES`) and diffusers' scripts hold no ModelScope converter; the diffusers
folders on the Hub were converted once, by hand. Rather than a hand-written converter, such a file (or folder) given
as the video model is refused in one line naming the layout needed and the diffusers-format repositories; so is a
diffusers-layout `UNet3DConditionModel` weights file alone (the pipeline folder around it is what loads).
"""

from __future__ import annotations

from pathlib import Path

from stillmoving.errors import StillMovingError

ORIGINAL_TEMPORAL = "temopral_conv"  # ModelScope's spelling of its temporal convolutions
DIFFUSERS_TEMPORAL = "temp_convs."  # UNet3DConditionModel's
ORIGINAL_FILES = ("text2video_pytorch_model.pth", "VQGAN_autoencoder.pth", "open_clip_pytorch_model.bin")
DIFFUSERS_REPOS = "damo-vilab/text-to-video-ms-1.7b (ModelScope), cerspense/zeroscope_v2_576w or zeroscope_v2_XL"
GET_IT = (
    f"a diffusers folder (model_index.json with unet/, vae/, text_encoder/, tokenizer/, scheduler/), e.g. "
    f"{DIFFUSERS_REPOS}: `huggingface-cli download REPO --local-dir DIR`, then --model DIR"
)
NEEDED = "ModelScope/ZeroScope loads from " + GET_IT


def video_unet_layout(keys) -> str | None:
    """'original ModelScope layout' or 'diffusers layout' for the keys of a ModelScope/ZeroScope UNet; else None."""
    keys = list(keys)
    if any(DIFFUSERS_TEMPORAL in k for k in keys):
        return "diffusers layout"
    if any(ORIGINAL_TEMPORAL in k for k in keys):
        return "original ModelScope layout"
    return None


def refusal(path: str | Path, layout: str) -> str:
    """The one line refusing a ModelScope/ZeroScope UNet file in `layout` as the video model."""
    if layout == "diffusers layout":
        return (
            f"{path} is a ModelScope/ZeroScope UNet (UNet3DConditionModel) alone; pass the pipeline folder around it "
            f"(its model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), e.g. {DIFFUSERS_REPOS}"
        )
    return (
        f"{path} is a ModelScope/ZeroScope UNet in the {layout}, which diffusers cannot convert (no converter for "
        f"UNet3DConditionModel's original files); {NEEDED}"
    )


def check_not_video_unet_file(path: str | Path) -> None:
    """Refuse a ModelScope/ZeroScope UNet file as a base T2I checkpoint, before the T2I loaders read it."""
    from stillmoving.formats.safety import weight_keys

    keys = weight_keys(path)
    layout = video_unet_layout(keys) if keys is not None else None
    if layout is None and Path(path).name in ORIGINAL_FILES:
        layout = "original ModelScope layout"
    if layout is not None:
        raise StillMovingError(refusal(path, layout))


def check_not_original_folder(path: str | Path) -> None:
    """Refuse ModelScope's original release folder (its .pth files, no model_index.json) as the video model."""
    folder = Path(path)
    if folder.is_dir() and not (folder / "model_index.json").is_file():
        found = [name for name in ORIGINAL_FILES if (folder / name).is_file()]
        if found:
            raise StillMovingError(
                f"{folder} is ModelScope's original release ({found[0]}), which diffusers cannot convert; {NEEDED}"
            )
