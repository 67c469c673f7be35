# vmlinuz: the kernel image alone, taken out of the kernel fragment.
redo-ifchange kernel.fragment.tar
tar -x -O -f kernel.fragment.tar --wildcards 'boot/vmlinuz-*'
