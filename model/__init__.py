"""The pixel-only segmentation network: trained on a release, evaluated on its val split,
predicting element masks and regions of any screenshot (`python -m model`)."""
