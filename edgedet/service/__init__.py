"""The on-device service: typed config, run loop, label filters, metrics, sd_notify."""
