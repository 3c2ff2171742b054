"""python customize.py NAME M1 [key=json ...]: stage 2 as the demo runs it, with overrides."""

import os

os.makedirs(os.environ.get("STUDY_DIR", "runs/heavy_drift"), exist_ok=True)
os.chdir(os.environ.get("STUDY_DIR", "runs/heavy_drift"))  # every path below is relative to the study folder
import json
import sys
import time

import torch

from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import train_spatial_adapters
from stillmoving.world.demo import DemoConfig
from stillmoving.world.phases import evaluation_scenes, image_prompts, prior_prompts
from stillmoving.world.weights import shipped_model, shipped_motion_adapter

torch.set_num_threads(1)
name, m1 = sys.argv[1], sys.argv[2]
over = {k: json.loads(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
shared = over.pop("shared_noise", 0)
temporal_prior = over.pop("temporal_prior", 0)
tdistill = over.pop("tdistill", 0)
skew = over.pop("skew", 0)
frozen_distill = over.pop("frozen_distill", 0)
if over.pop("motion_branch", 0):  # adapters on the motion modules' input (motion_branch.py), not the spatial layers
    import motion_branch

    motion_branch.use("train")


def draws(scheduler, latents, generators, low=0):
    """Each item's noise, then its timestep in [low, T), from its own generator (as `losses.video_loss` draws them)."""
    noise = torch.stack([torch.randn(latents.shape[1:], generator=g) for g in generators]).to(latents)
    t = torch.cat([torch.randint(low, scheduler.config.num_train_timesteps, (1,), generator=g) for g in generators])
    return noise, t


def frozen_m1_unet():
    """The customized T2I's own UNet, frozen: the target of the M1-prediction variants."""
    from stillmoving.loading import load_customized, load_t2v

    return load_customized(load_t2v(str(shipped_model())), m1, []).unet.requires_grad_(False)


if frozen_distill:
    import stillmoving.training.spatial_stage as st
    from stillmoving import losses as loop

    teacher2d = frozen_m1_unet()

    def video_loss_fd(model, scheduler, latents, text, snr_gamma=None, generators=None, **kw):
        if not bool((latents == latents[:, :, :1]).all()):
            return loop.video_loss(model, scheduler, latents, text, snr_gamma, generators, **kw)
        noise, t = draws(scheduler, latents, generators)
        noisy = scheduler.add_noise(latents, noise, t)  # (b, c, f, h, w)
        b, c, f, h, w = noisy.shape
        with torch.no_grad():  # the customized T2I's own prediction, frame by frame: what V + M1 should reproduce
            flat = noisy.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
            target = teacher2d(flat, t.repeat_interleave(f), encoder_hidden_states=text.repeat_interleave(f, 0)).sample
            target = target.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)
        return ((model(noisy, t, text) - target) ** 2).mean()

    st.video_loss = video_loss_fd
pooled = over.pop("frozen_pooled", 0)
if pooled:  # frozen videos fitted to M1's posterior given ALL frames: M1 on the frames' mean at its own noise level
    import stillmoving.training.spatial_stage as st
    from stillmoving import losses as loop

    teacher2d = frozen_m1_unet()

    def video_loss_pooled(model, scheduler, latents, text, snr_gamma=None, generators=None, **kw):
        if not bool((latents == latents[:, :, :1]).all()):
            return loop.video_loss(model, scheduler, latents, text, snr_gamma, generators, **kw)
        noise, t = draws(scheduler, latents, generators)
        noisy = scheduler.add_noise(latents, noise, t)  # (b, c, f, h, w)
        f = noisy.shape[2]
        table = scheduler.alphas_cumprod.float()
        abar = table[t]
        snr = f * abar / (1 - abar)  # the frames' mean: the same clean latent, noise variance divided by f
        t2 = (table[None] - (snr / (1 + snr))[:, None]).abs().argmin(1)
        abar2 = table[t2]
        pooled_x = noisy.mean(2) * (abar2 / abar).sqrt().view(-1, 1, 1, 1)
        with torch.no_grad():
            eps2 = teacher2d(pooled_x, t2, encoder_hidden_states=text).sample
            x0 = (pooled_x - (1 - abar2).sqrt().view(-1, 1, 1, 1) * eps2) / abar2.sqrt().view(-1, 1, 1, 1)
            target = (noisy - abar.sqrt().view(-1, 1, 1, 1, 1) * x0[:, :, None]) / (1 - abar).sqrt().view(
                -1, 1, 1, 1, 1
            )
        return ((model(noisy, t, text) - target) ** 2).mean()

    st.video_loss = video_loss_pooled
agree = over.pop("agree", 0)  # weight of the frames' agreement on frozen videos (alpha 1)
look = over.pop("look", 0)  # weight of the frames' look agreement at alpha 0 (the inference setting)
clamp = over.pop("agree_clamp", 10.0)  # the largest (1 - a_t) / a_t weight: x_0 errors at high noise, bounded
if agree or look:
    import stillmoving.training.spatial_stage as st
    from stillmoving import losses as loop
    from stillmoving.adapters.motion import MotionLoRA
    from stillmoving.losses import denoising_loss, frame_deviation

    _set_scale = MotionLoRA.set_scale
    _alpha = {"now": 0.0}

    def _tracking_set_scale(self, scale):
        _alpha["now"] = scale
        return _set_scale(self, scale)

    MotionLoRA.set_scale = _tracking_set_scale

    def video_loss_agree(model, scheduler, latents, text, snr_gamma=None, generators=None, **kw):
        if not bool((latents == latents[:, :, :1]).all()):
            return loop.video_loss(model, scheduler, latents, text, snr_gamma, generators, **kw)
        noise, t = draws(scheduler, latents, generators)
        noisy = scheduler.add_noise(latents, noise, t)
        abar = scheduler.alphas_cumprod.to(latents)[t].view(-1, 1, 1, 1, 1)
        ratio = (1 - abar) / abar  # x_0 error = sqrt(ratio) * eps error
        weight = ratio.clamp(max=clamp)
        pred = model(noisy, t, text)
        total = denoising_loss(pred, noise)
        if agree:  # frames of a frozen video must agree: the frame-varying part of the predicted x_0
            total = total + agree * (weight * frame_deviation(pred - noise) ** 2).mean()
        if look:  # the same video at alpha 0: each frame's colour statistics (not its layout) must agree
            scale = _alpha["now"]
            study_motion.set_scale(0.0)
            x0 = (noisy - (1 - abar).sqrt() * model(noisy, t, text)) / abar.sqrt()
            study_motion.set_scale(scale)
            stats = torch.cat([x0.mean(dim=(3, 4)), x0.std(dim=(3, 4))], 1)  # (b, 2c, f)
            dev = stats - stats.mean(dim=2, keepdim=True)
            total = total + look * ((weight / ratio).view(-1, 1, 1) * dev**2).mean()
        return total

    st.video_loss = video_loss_agree
    _attach = st.attach_motion_adapter

    def _keep_motion(cfg, unet, bake=True):
        global study_motion
        study_motion = _attach(cfg, unet, bake)
        return study_motion

    st.attach_motion_adapter = _keep_motion
if skew:
    import stillmoving.adapters.spatial as sp

    def skew_forward(self, x):
        down = torch.cat([self.down, self.up.t()], 1) / 2**0.5  # (C, 2r)
        up = torch.cat([self.up, -self.down.t()], 0) / 2**0.5  # (2r, C): down @ up = (DU - U^T D^T) / 2
        return sp.channel_adapter(x, down, up)

    sp.ChannelAdapter.forward = skew_forward
    sp._adapt = lambda adapter, x: adapter(x)
if tdistill:
    import stillmoving.training.spatial_stage as st
    from stillmoving import losses as loop
    from stillmoving.loading import load_t2v

    teacher = load_t2v(str(shipped_model())).unet.requires_grad_(False)

    def video_loss_td(model, scheduler, latents, text, snr_gamma=None, generators=None, **kw):
        if bool((latents == latents[:, :, :1]).all()):
            return loop.video_loss(model, scheduler, latents, text, snr_gamma, generators, **kw)
        noise, t = draws(scheduler, latents, generators)
        noisy = scheduler.add_noise(latents, noise, t)
        with torch.no_grad():
            target = teacher(noisy, t, encoder_hidden_states=text.repeat_interleave(noisy.shape[2], 0)).sample
        pred = model(noisy, t, text)
        dev = lambda x: x - x.mean(dim=2, keepdim=True)
        return ((dev(pred) - dev(target)) ** 2).mean() * tdistill

    st.video_loss = video_loss_td
if temporal_prior:
    import stillmoving.training.spatial_stage as st
    from stillmoving import losses as loop
    from stillmoving.losses import diffusion_target

    def video_loss_tp(model, scheduler, latents, text, snr_gamma=None, generators=None, **kw):
        if bool((latents == latents[:, :, :1]).all()):
            return loop.video_loss(model, scheduler, latents, text, snr_gamma, generators, **kw)
        noise, t = draws(scheduler, latents, generators)
        err = model(scheduler.add_noise(latents, noise, t), t, text) - diffusion_target(scheduler, latents, noise, t)
        dev = err - err.mean(dim=2, keepdim=True)  # (b, c, f, h, w): only the frame-varying part of the error
        return (dev**2).mean()

    st.video_loss = video_loss_tp
tmin = over.pop("tmin", 0)  # frozen videos: timesteps drawn from [tmin, T) only
tmin_prior = over.pop("tmin_prior", 0)  # prior videos: the same
if tmin or tmin_prior:
    import stillmoving.training.spatial_stage as st
    from stillmoving.losses import denoising_loss, diffusion_target

    def video_loss_tmin(model, scheduler, latents, text, snr_gamma=None, generators=None, **kw):
        low = tmin if bool((latents == latents[:, :, :1]).all()) else tmin_prior
        noise, t = draws(scheduler, latents, generators, low)
        noisy = scheduler.add_noise(latents, noise, t)
        return denoising_loss(model(noisy, t, text), diffusion_target(scheduler, latents, noise, t))

    st.video_loss = video_loss_tmin
if shared:
    import stillmoving.training.spatial_stage as st
    from stillmoving import losses as loop
    from stillmoving.losses import denoising_loss, diffusion_target

    def video_loss(model, scheduler, latents, text, snr_gamma=None, generators=None, **kw):
        if not bool((latents == latents[:, :, :1]).all()):
            return loop.video_loss(model, scheduler, latents, text, snr_gamma, generators, **kw)
        noise = torch.stack([torch.randn(latents[:, :, :1].shape[1:], generator=g) for g in generators]).to(latents)
        if shared < 1:  # partly shared: mix
            ind = torch.stack([torch.randn(latents.shape[1:], generator=g) for g in generators]).to(latents)
            noise = (shared**0.5) * noise + ((1 - shared) ** 0.5) * ind
        else:
            noise = noise.expand_as(latents).contiguous()
        t = torch.cat([torch.randint(0, scheduler.config.num_train_timesteps, (1,), generator=g) for g in generators])
        noisy = scheduler.add_noise(latents, noise, t)
        return denoising_loss(model(noisy, t, text), diffusion_target(scheduler, latents, noise, t))

    st.video_loss = video_loss
cfg = DemoConfig(num_prior_videos=16)
train_scenes = evaluation_scenes("star", 16, 4, 32, 8)
run = dict(
    model=str(shipped_model()),
    output=f"runs/{name}",
    motion_adapter=str(shipped_motion_adapter()),
    customized=m1,
    prompt=image_prompts(train_scenes),
    prior_prompt=prior_prompts(cfg),
    num_images=16,
    num_prior_videos=16,
    spatial_rank=8,
    num_frames=8,
    height=32,
    width=32,
    steps=500,
    lr=1e-4,
    sample_steps=15,
    guidance_scale=4.0,
    seed=0,
    frame_agreement=0.0,  # the study's "defaults": the paper's objective alone
    frozen_target="noise",
    prior_loss="video",
    prior_loss_weight=1.0,
    image_guidance_scale=4.0,  # M1's images sampled as the videos are (the library's default is now 1: docs/method.md)
    overwrite=True,
    cache_dir="cache",
)
run.update(over)
t = time.time()
out = train_spatial_adapters(CustomizeConfig(**run))
losses = json.load(open(f"runs/{name}/customize_run.json"))
if skew:  # an equivalent plain adapter file of rank 2r
    from stillmoving.adapters.spatial import SpatialAdapters

    a = SpatialAdapters.load(out)
    b = SpatialAdapters(a.placements, 2 * a.rank)
    with torch.no_grad():
        for la, lb in zip(a.layers, b.layers):
            lb.down.copy_(torch.cat([la.down, la.up.t()], 1) / 2**0.5)
            lb.up.copy_(torch.cat([la.up, -la.down.t()], 0) / 2**0.5)
    b.save(out)
print(name, out, f"{time.time() - t:.0f}s")
