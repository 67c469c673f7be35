/* hello: the program this chapter ships in an image. */
#include <stdio.h>

int main(void)
{
	printf("Hello, World!\n");
	return 0;
}
