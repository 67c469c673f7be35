#include <stdio.h>
#include <zlib.h>

int main(void) {
	printf("hello from Debian, compressing with zlib %s\n", zlibVersion());
	return 0;
}
