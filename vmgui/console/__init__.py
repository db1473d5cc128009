"""Console sources without Qt: framebuffer-source protocol, shared-memory source, RFB client,
key mapping and the serial terminal model."""
