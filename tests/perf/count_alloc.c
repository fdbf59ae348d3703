/* LD_PRELOAD shim that counts heap allocations (malloc, calloc, realloc,
 * posix_memalign, aligned_alloc; operator new goes through malloc) and writes
 * the count to $COUNT_ALLOC_OUT when the process exits. tests/perf only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_ulong count;
static void* (*real_malloc)(size_t);
static void* (*real_calloc)(size_t, size_t);
static void* (*real_realloc)(void*, size_t);
static int (*real_posix_memalign)(void**, size_t, size_t);
static void* (*real_aligned_alloc)(size_t, size_t);

/* dlsym may itself call calloc: serve that from a small static area. */
static char bootstrap[4096];
static size_t bootstrap_used;

static void init(void) {
  real_malloc = dlsym(RTLD_NEXT, "malloc");
  real_calloc = dlsym(RTLD_NEXT, "calloc");
  real_realloc = dlsym(RTLD_NEXT, "realloc");
  real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
}

void* malloc(size_t n) {
  if (!real_malloc) init();
  atomic_fetch_add(&count, 1);
  return real_malloc(n);
}
void* calloc(size_t a, size_t b) {
  if (!real_calloc) {
    void* p = bootstrap + bootstrap_used;
    bootstrap_used += (a * b + 15) & ~(size_t)15;
    return p;
  }
  atomic_fetch_add(&count, 1);
  return real_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  if (!real_realloc) init();
  atomic_fetch_add(&count, 1);
  return real_realloc(p, n);
}
int posix_memalign(void** p, size_t a, size_t n) {
  if (!real_posix_memalign) init();
  atomic_fetch_add(&count, 1);
  return real_posix_memalign(p, a, n);
}
void* aligned_alloc(size_t a, size_t n) {
  if (!real_aligned_alloc) init();
  atomic_fetch_add(&count, 1);
  return real_aligned_alloc(a, n);
}
void free(void* p) {
  static void (*real_free)(void*);
  if ((char*)p >= bootstrap && (char*)p < bootstrap + sizeof bootstrap) return;
  if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
  real_free(p);
}

__attribute__((destructor)) static void report(void) {
  const char* out = getenv("COUNT_ALLOC_OUT");
  if (!out) return;
  FILE* f = fopen(out, "w");
  if (!f) return;
  fprintf(f, "%lu\n", (unsigned long)atomic_load(&count));
  fclose(f);
}
