"""The base T2V on some denoising steps, naive injection on the others: evalv.py --v-steps A-B.

Where the heavily drifted star loses its motion (session 29): the motion modules' attention is the base T2V's under
naive injection, and the frames' features part less; if a video's layout and motion are set in the first, noisiest
steps and its look in the last ones, V's own spatial layers (with V's own text encoder) for the first K steps and
M1's from step K on keep V's motion and M1's look (hypothesis C). Spatial adapters, where attached, stay on every
step.
"""

import torch

from stillmoving.injection import spatial_state_dict


def base_on(pipe, base, steps: range, steps_per_video: int) -> None:
    """Make `pipe` (V with M1 injected) run `steps` of every `steps_per_video` UNet calls (one per DDIM step: the
    guidance batch is one call) with `base`'s (V's) spatial weights and V's prompt embeddings."""
    unet = pipe.unet
    states = {
        "v": {k: v.clone() for k, v in spatial_state_dict(base.unet).items()},
        "m1": {k: v.clone() for k, v in spatial_state_dict(unet).items()},
    }
    now, calls, embeds = ["m1"], [0], {}
    encode = pipe.encode_prompt

    def encode_both(prompt, device, num, guidance, negative_prompt=None, **kwargs):
        out = encode(prompt, device, num, guidance, negative_prompt, **kwargs)
        embeds["v"] = base.encode_prompt(prompt, device, num, guidance, negative_prompt, **kwargs)
        return out

    def pick(module, args, kwargs):
        use = "v" if calls[0] % steps_per_video in steps else "m1"
        calls[0] += 1
        if use != now[0]:
            unet.load_state_dict(states[use], strict=False)
            now[0] = use
        if use == "v":
            pos, neg = embeds["v"]
            text = torch.cat([neg, pos]) if neg is not None and pipe.do_classifier_free_guidance else pos
            frames = kwargs["encoder_hidden_states"].shape[0] // text.shape[0]
            kwargs["encoder_hidden_states"] = text.repeat_interleave(frames, dim=0)
        return args, kwargs

    pipe.encode_prompt = encode_both
    unet.register_forward_pre_hook(pick, with_kwargs=True)
