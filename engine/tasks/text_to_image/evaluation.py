"""Text-to-image's validation loss: the denoising loss on held-out images at fixed noise and fixed timesteps.

As sd-scripts' and diffusion-pipe's validation do, each held-out image is noised at the same timesteps, spread
over the schedule, with noise from a generator seeded by (seed, row, timestep): two evaluations of the same
weights give the same number, whatever the batch size or process count, so figures at different steps differ
by the weights alone. The latent is the VAE's mean (no sampled latent), and the loss is plain MSE against
the training target (min-SNR weighting would make it depend on the timesteps chosen here).
"""

import torch

# Where on the noise schedule each image is evaluated, as shares of it (diffusion-pipe's quantiles).
TIMESTEP_SHARES = (0.1, 0.3, 0.5, 0.7, 0.9)


def fixed_timesteps(num_train_timesteps: int) -> list[int]:
    return [round(share * (num_train_timesteps - 1)) for share in TIMESTEP_SHARES]


def noise_seed(seed: int, row: int, timestep: int) -> int:
    return (seed * 1_000_003 + row) * 4096 + timestep


def eval_losses(task, batch: dict) -> torch.Tensor:
    """The loss of each example of `batch`, averaged over the fixed timesteps."""
    device, dtype = task.accelerator.device, task.weight_dtype
    if "latent_mean" in batch:
        latents = batch["latent_mean"].to(device)
    else:
        latents = task.vae.encode(batch["pixels"].to(device, dtype=task.vae.dtype)).latent_dist.mode()
    latents = (latents * task.vae.config.scaling_factor).to(dtype)
    steps = fixed_timesteps(task.noise_scheduler.config.num_train_timesteps)
    rows = batch["rows"].tolist()
    noise = torch.stack([
        torch.randn(latents.shape[1:], generator=torch.Generator(device).manual_seed(
            noise_seed(task.spec.train.seed, row, step)), device=device, dtype=dtype)
        for row in rows for step in steps])
    timesteps = torch.tensor(steps * len(rows), device=device).long()
    repeat = len(steps)
    losses = task.denoising_losses(
        latents.repeat_interleave(repeat, dim=0), noise, timesteps, *_conditioning(task, batch, repeat),
        weighted=False)
    return losses.view(len(rows), repeat).mean(dim=1)


def _conditioning(task, batch: dict, repeat: int) -> tuple:
    """(prompt embeddings, pooled embedding or None, SDXL's time ids or None), each repeated per timestep."""
    device = task.accelerator.device
    if "prompt_embeds" in batch:
        hidden, pooled = batch["prompt_embeds"].to(device), batch.get("pooled")
    else:
        hidden, pooled = task.encode_text(batch["input_ids"].to(device))
    time_ids = batch.get("time_ids")

    def each(value):
        return None if value is None else value.to(device).repeat_interleave(repeat, dim=0)

    return each(hidden), each(pooled), each(time_ids)
