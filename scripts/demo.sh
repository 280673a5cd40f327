#!/bin/sh
# make run: start gotd in the foreground on a demo repository, with the
# built-in SSH server, git:// and smart HTTP on loopback. No root and no
# configuration needed: everything lives in a data directory under the
# user's state directory. Ports: SSH_PORT, GIT_PORT, HTTP_PORT.
set -eu
top=$(pwd)
bin=$top/bin
ssh_port=${SSH_PORT:-2222}
git_port=${GIT_PORT:-9418}
http_port=${HTTP_PORT:-8080}
me=$(id -un)
daemon_user=$me
if [ "$(id -u)" = 0 ]; then
	# gotd gives up root for an unprivileged account; nobody will do,
	# and it must reach the data directory.
	daemon_user=nobody
	data=${GOTD_DEMO_DIR:-/var/lib/gotd-demo}
else
	data=${GOTD_DEMO_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/gotd-demo}
fi
mkdir -p "$data"
chmod 755 "$data"
repo=$data/demo.git

# The demo repository: a short history, a branch and a tag.
if [ ! -d "$repo" ]; then
	"$bin/gotadmin" init -b main "$repo" >/dev/null
	tmp=$(mktemp -d)
	g() { git -C "$tmp" -c user.name="gotd demo" -c user.email=demo@localhost "$@"; }
	g init -q -b main
	echo "A repository served by gotd." > "$tmp/README"
	g add README
	g commit -q -m "Start the demo repository"
	for i in 1 2 3 4 5; do
		echo "Line $i" >> "$tmp/notes.txt"
		g add notes.txt
		g commit -q -m "Add line $i to the notes"
	done
	g tag -a v1.0 -m "Version 1.0"
	g checkout -q -b topic
	echo "An idea." > "$tmp/idea.txt"
	g add idea.txt
	g commit -q -m "Write down an idea"
	g checkout -q main
	g push -q "$repo" main topic v1.0
	rm -rf "$tmp"
fi

# Who may push: the invoking user's SSH keys, or a key made for the
# demo; over HTTP, the account "demo" with a token made here.
keys=
for k in "$HOME"/.ssh/*.pub; do
	[ -f "$k" ] && keys="$keys	key \"$(cat "$k")\"
"
done
demo_key=
if [ -z "$keys" ]; then
	demo_key=$data/demo_key
	[ -f "$demo_key" ] || ssh-keygen -q -t ed25519 -N "" -C "gotd demo" -f "$demo_key"
	keys="	key \"$(cat "$demo_key.pub")\"
"
fi
[ -f "$data/token" ] || od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$data/token"
token=$(cat "$data/token")
sum=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
umask 077
printf 'token demo sha256:%s\n' "$sum" > "$data/gotd-secrets.conf"
umask 022

cat > "$data/gotd.conf" <<CONF
# Written by make run (scripts/demo.sh).
listen on "$data/gotd.sock"
user $daemon_user
listen ssh on 127.0.0.1 port $ssh_port
listen git on 127.0.0.1 port $git_port
listen http on 127.0.0.1 port $http_port
ssh hostkey "$data/ssh_host_ed25519_key"
account demo {
$keys}
repository "demo" {
	path "$repo"
	permit rw demo
	permit ro anonymous
}
CONF
if [ "$daemon_user" != "$me" ]; then
	chown -R "$daemon_user" "$repo"
fi

ssh_cmd="ssh -o UserKnownHostsFile=$data/known_hosts -o StrictHostKeyChecking=accept-new"
[ -n "$demo_key" ] && ssh_cmd="$ssh_cmd -i $demo_key -o IdentitiesOnly=yes"
cat <<MSG
gotd is starting with the repository "demo" (data in $data).

  git://    git clone git://127.0.0.1:$git_port/demo
  HTTP:     git clone http://127.0.0.1:$http_port/demo
  SSH:      GIT_SSH_COMMAND="$ssh_cmd" \\
              git clone ssh://demo@127.0.0.1:$ssh_port/demo

Browse it at http://127.0.0.1:$http_port/demo/ (the repositories:
http://127.0.0.1:$http_port/; log in as "demo" with the token below).

Push over SSH with the clone above, or over HTTP as the account "demo"
with the token $token:

  git push http://demo:$token@127.0.0.1:$http_port/demo main

The clients: $bin/gotctl -f $data/gotd.sock info
Stop gotd with Ctrl-C.

MSG
exec "$bin/gotd" -d -v -f "$data/gotd.conf" -s "$data/gotd-secrets.conf"
