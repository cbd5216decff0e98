"""One readable file per architecture; each exposes `SPECS` (see `base.ArchSpec`)."""
