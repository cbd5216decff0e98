"""Converting official pretrained weights into inpaint-cli release files."""
