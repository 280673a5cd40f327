#!/bin/sh
# Start gotd on a demo repository, in the foreground, reachable through
# gotsh on a unix socket under ./run (no sshd needed: a small wrapper
# plays ssh's part and runs gotsh as sshd would).
set -eu
top=$(pwd)
bin=$top/bin
run=$top/run
mkdir -p "$run"
chmod 755 "$run"
me=$(id -un)
daemon_user=$me
if [ "$(id -u)" = 0 ]; then
	# gotd drops root for an unprivileged account; nobody will do here.
	daemon_user=nobody
fi
if [ ! -d "$run/demo.git" ]; then
	"$bin/gotadmin" init "$run/demo.git" >/dev/null
	tmp=$(mktemp -d)
	git -C "$tmp" init -q -b main
	echo "Served by gotd." > "$tmp/README"
	git -C "$tmp" add README
	git -C "$tmp" -c user.name=gotd -c user.email=gotd@localhost commit -q -m "Demo repository"
	git -C "$tmp" push -q "$run/demo.git" main
	rm -rf "$tmp"
fi
if [ "$daemon_user" != "$me" ]; then
	chown -R "$daemon_user" "$run/demo.git"
fi
cat > "$run/gotd.conf" <<CONF
listen on "$run/gotd.sock"
user $daemon_user
repository "demo" {
	path "$run/demo.git"
	permit rw $me
	permit ro anonymous
}
CONF
cat > "$run/ssh" <<SSH
#!/bin/sh
# Stands in for ssh to this machine: runs the remote command with gotsh.
for a; do cmd=\$a; done
GOTD_UNIX_SOCKET=$run/gotd.sock exec $bin/gotsh -c "\$cmd"
SSH
chmod 755 "$run/ssh"
cat <<MSG
gotd is starting on $run/gotd.sock with the repository "demo".
Clone and push through gotsh, as an OpenSSH login would:

  GIT_SSH_COMMAND=$run/ssh git clone ssh://localhost/demo
  gotctl -f $run/gotd.sock info

With sshd and an account whose shell is $bin/gotsh, the URL is
ssh://user@host/demo. Stop gotd with Ctrl-C.
MSG
exec "$bin/gotd" -d -v -f "$run/gotd.conf"
