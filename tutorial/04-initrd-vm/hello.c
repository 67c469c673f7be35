/* hello: the program this chapter puts into a root file system. */
#include <stdio.h>

int main(void)
{
	printf("Hello, World!\n");
	return 0;
}
