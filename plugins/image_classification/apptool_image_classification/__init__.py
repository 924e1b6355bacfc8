"""Image classification: ImageNet-1k out of the box, or fine-tuned from ImageNet on the user's ImageFolder."""
