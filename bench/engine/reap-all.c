/*
 * reap-all: runs a command as a child subreaper and waits for every process it leaves
 * behind, orphans included, so the CPU time its caller measures (the rusage of its
 * children, as hyperfine and time(1) read it) counts all of them. redo-ts ends its rule
 * spawner without waiting for it, so without this the rules' CPU time is lost.
 * Usage: reap-all COMMAND [ARG...]; exits with the command's status.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: reap-all COMMAND [ARG...]\n");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    perror("reap-all: prctl");
    return 2;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("reap-all: fork");
    return 2;
  }
  if (child == 0) {
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  int result = 0;
  for (;;) {
    int status = 0;
    pid_t pid = wait(&status);
    if (pid == -1) {
      if (errno == EINTR) continue;
      break;
    }
    if (pid == child) result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return result;
}
