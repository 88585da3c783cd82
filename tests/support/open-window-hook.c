// An LD_PRELOAD hook for the store-opening tests: it parks a process inside LMDB's mdb_env_open at
// the one moment that used to lose commits. LMDB 0.9's first opener takes the lock file
// exclusively, resets its last-commit number to 0, and only then reads the data file's meta
// pages (with pread) to set it again. The first pread of a `data.mdb` is therefore inside that
// window: the hook writes "open-window-hook: parked" to stderr and waits there until the test
// kills the process, exactly as if it had died at that instant.
//
// It is armed only when KITH_TEST_PARK_IN_OPEN is set in the environment, and parks only once.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int parked = 0;

static int isDataFile(int fd) {
  char link[64];
  char target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return 0;
  target[n] = '\0';
  const char* suffix = "/data.mdb";
  size_t len = strlen(suffix);
  return (size_t)n >= len && strcmp(target + n - len, suffix) == 0;
}

static void maybePark(int fd) {
  if (parked || getenv("KITH_TEST_PARK_IN_OPEN") == NULL || !isDataFile(fd)) return;
  parked = 1;
  static const char line[] = "open-window-hook: parked\n";
  (void)!write(2, line, sizeof line - 1);
  for (;;) pause();
}

typedef ssize_t (*PreadFn)(int, void*, size_t, off_t);

ssize_t pread(int fd, void* buf, size_t count, off_t offset) {
  maybePark(fd);
  PreadFn real = (PreadFn)dlsym(RTLD_NEXT, "pread");
  return real(fd, buf, count, offset);
}

ssize_t pread64(int fd, void* buf, size_t count, off_t offset) {
  maybePark(fd);
  PreadFn real = (PreadFn)dlsym(RTLD_NEXT, "pread64");
  return real(fd, buf, count, offset);
}
