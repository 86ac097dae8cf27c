"""Image networks: the U-Net velocity/denoiser."""

from flowforge_images.models.unet import UNet, UNetParams, build_unet, parameter_counts

__all__ = ["UNet", "UNetParams", "build_unet", "parameter_counts"]
