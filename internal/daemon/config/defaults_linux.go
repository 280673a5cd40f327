package config

// DefaultSpool is the notification queue's directory: on Linux under
// /var/lib, where services keep their state (the FHS has no /var/db,
// OpenBSD's place for it).
const DefaultSpool = "/var/lib/gotd/notify"
