# ROOTFS.runlocal, ROOTFS.PROGRAM.runlocal: the standard output of a program run inside
# the rootfs ROOTFS.rootfs.tar, in a chroot entered with `unshare -r` (a user namespace:
# no root needed).
#
# The program is /bin/PROGRAM (/bin/ROOTFS when the name has no PROGRAM part), or the
# first line of $2.cmd when that file exists, split into words by sh (no quoting).
# It runs with an empty environment apart from PATH=/bin:/usr/bin, HOME=/ and LC_ALL=C,
# so host settings do not leak into its output. Its stderr is the rule's stderr. If it
# exits non-zero this rule fails with the same status and the previous target is kept.
#
# The rootfs is unpacked with plain `tar -x` into a scratch folder: ownership inside the
# archive does not matter here, since inside `unshare -r` every file appears owned by
# root. Device nodes cannot be created without root; a rootfs for this rule has none.
name=$(basename "$2")
rootfs="${name%%.*}.rootfs.tar"
[ "$name" = "$2" ] || rootfs="$(dirname "$2")/$rootfs"
case $name in
*.*) program="/bin/${name#*.}" ;;
*) program="/bin/$name" ;;
esac
redo-ifchange "$rootfs"
if [ -e "$2.cmd" ]; then
	redo-ifchange "$2.cmd"
	command=$(sed -n 1p "$2.cmd")
else
	redo-ifcreate "$2.cmd"
	command=$program
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/redo-runlocal.XXXXXX")
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
tar -x -f "$rootfs" -C "$scratch" --no-same-owner --delay-directory-restore
chmod 0755 "$scratch"

# chroot lives in /usr/sbin, which is not on every user's PATH.
chroot=$(PATH="$PATH:/usr/sbin:/sbin" command -v chroot)
if ! unshare -r true 2>/dev/null; then
	echo "runlocal: \`unshare -r\` does not work here, so the rootfs cannot be entered without root" >&2
	echo "  hint: unprivileged user namespaces may be disabled (sysctl user.max_user_namespaces," >&2
	echo "  kernel.unprivileged_userns_clone, or a container that forbids them)" >&2
	exit 1
fi
status=0
# shellcheck disable=SC2086 # the command is split into words on purpose
env -i PATH=/bin:/usr/bin HOME=/ LC_ALL=C \
	unshare -r "$chroot" "$scratch" $command > "$3" || status=$?
if [ "$status" -ne 0 ]; then
	echo "runlocal: \"$command\" in $rootfs exited with status $status" >&2
	exit "$status"
fi
