# hello.libs: the files the program `hello` needs at run time, as ldd reports them,
# the dynamic loader included: one line each, the path the loader will open, then
# the sha256 of that file's content.
redo-ifchange hello
# The libraries live outside the project, where redo-ts does not track them, so this
# rule runs on every build. Its output changes only when a library does (early
# cutoff), and only then do the targets built from it run again.
redo-always
# ldd prints "libc.so.6 => /lib/.../libc.so.6 (0x...)" for a library, "/lib64/ld-... (0x...)"
# for the loader and "linux-vdso.so.1 (0x...)" for the kernel's vDSO, which has no file.
ldd ./hello | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
	while read -r library; do
		echo "$library $(sha256sum < "$library" | cut -d ' ' -f 1)"
	done
