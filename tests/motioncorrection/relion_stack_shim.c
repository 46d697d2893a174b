/*
 * LD_PRELOAD shim for Debian's RELION 3.1.3 (no-CUDA build) running an external MotionCor2.
 *
 * MotioncorrRunner::executeMotioncor2 appends "-Gpu <rank % devCount>" when no --gpu ids are
 * given, but devCount is never assigned in a build without CUDA: it is whatever the stack held
 * before main. On some machines that is non-zero and RELION runs; on others it is 0 and RELION
 * dies with SIGFPE before starting the program. This shim wraps main so that its stack frame
 * lands on memory filled with 0x01 bytes: devCount is then 0x01010101 and RELION passes "-Gpu 0",
 * which semc-motioncor2 accepts and ignores on a machine without a GPU. Nothing else changes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);

static main_fn real_main;

static void __attribute__((noinline)) fill_stack(void) {
    volatile unsigned char pad[1 << 16];
    for (unsigned long i = 0; i < sizeof pad; i++) pad[i] = 1;
}

static int wrapped_main(int argc, char **argv, char **envp) {
    fill_stack();
    return real_main(argc, argv, envp);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end) {
    start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
    real_main = main;
    return real(wrapped_main, argc, argv, init, fini, rtld_fini, stack_end);
}
