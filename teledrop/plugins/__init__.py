"""teledrop's plugin system: hook specs, the plugin manager and the built-in plugins."""
