# Latency of one small durable append on this disk, by method: pwrite+fdatasync, pwritev2(RWF_DSYNC),
# O_DIRECT|O_DSYNC, into fallocate()d or zero-written space. Usage: python3 bench/fsync-modes.py [dir]
# (run on an otherwise idle machine; the directory should be on the data directories' filesystem).
import os, mmap, time, sys
d = sys.argv[1] if len(sys.argv) > 1 else '.'
N = 2000
path = os.path.join(d, 'fsync-modes.tmp')
SIZE = 64 << 20
def prep(zero):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    if zero:
        buf = b'\0' * (1 << 20)
        for i in range(SIZE >> 20):
            os.write(fd, buf)
        os.fsync(fd)
    else:
        os.posix_fallocate(fd, 0, SIZE)
        os.fsync(fd)
    os.close(fd)
def run(name, flags, zero, write):
    prep(zero)
    fd = os.open(path, os.O_RDWR | flags)
    lat = []
    for i in range(N):
        t = time.perf_counter_ns()
        write(fd, i)
        lat.append((time.perf_counter_ns() - t) / 1000)
    os.close(fd)
    lat.sort()
    print(f"{name:44s} p50 {lat[N//2]:6.1f} us  p90 {lat[N*9//10]:6.1f}  p99 {lat[N*99//100]:6.1f}")
rec = b'x' * 150
def pw_fdatasync(fd, i):
    os.pwrite(fd, rec, i * 150); os.fdatasync(fd)
def pw_dsync_flag(fd, i):
    os.pwritev(fd, [rec], i * 150, os.RWF_DSYNC)
block = mmap.mmap(-1, 4096)
block.write(b'y' * 4096)
def direct(fd, i):
    os.pwritev(fd, [block], (i * 150) // 4096 * 4096)
for zero in (False, True):
    z = 'zeroed' if zero else 'fallocated'
    run(f'pwrite 150 B + fdatasync ({z})', 0, zero, pw_fdatasync)
    run(f'pwritev2 RWF_DSYNC 150 B ({z})', 0, zero, pw_dsync_flag)
    run(f'O_DIRECT|O_DSYNC 4 KiB rewrite ({z})', os.O_DIRECT | os.O_DSYNC, zero, direct)
os.unlink(path)
