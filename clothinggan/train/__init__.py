"""Training: data preparation, StyleGAN2 training, augmentation, garment classifier and metrics."""
