"""One readable file per architecture; each exposes `SPECS` (see `base.ArchSpec`). Modules named
`_*.py` hold code that several architectures share and register nothing."""
