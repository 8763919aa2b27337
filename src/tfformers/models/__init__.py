"""One module per architecture; `auto` maps a configuration to its class."""
