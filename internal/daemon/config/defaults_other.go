//go:build !linux

package config

// DefaultSpool is the notification queue's directory, where OpenBSD
// keeps a daemon's state.
const DefaultSpool = "/var/db/gotd/notify"
