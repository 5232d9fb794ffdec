/* Atomic file replacement: write a temp file in the target's folder, fsync it, rename it over the
 * target, fsync the folder. rename() within one file system is atomic, so readers see either the
 * old file or the complete new one, and an interrupted writer leaves the old file intact. */
#include "mmcr/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint tmp_counter;

mmcr_status mmcr_atomic_open(mmcr_atomic_file *af, const char *path, mmcr_err *err) {
    MMCR_ASSERT(af && path);
    memset(af, 0, sizeof *af);
    if (!*path) return mmcr_err_set(err, MMCR_ERR_ARG, "empty output file name");
    int len = snprintf(af->path, sizeof af->path, "%s", path);
    if (len < 0 || (size_t)len >= sizeof af->path)
        return mmcr_err_set(err, MMCR_ERR_ARG, "output path too long: '%.64s...'", path);
    /* The temp name extends the target's own name, so it lives in the same folder. O_EXCL with
     * a per-process counter avoids clobbering another writer's temp file; mode 0666 lets the
     * umask decide the final permissions as for any new file. */
    for (int attempt = 0; attempt < 1000; attempt++) {
        unsigned c = atomic_fetch_add(&tmp_counter, 1u);
        len = snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld.%u", path, (long)getpid(), c);
        if (len < 0 || (size_t)len >= sizeof af->tmp)
            return mmcr_err_set(err, MMCR_ERR_ARG, "output path too long: '%.64s...'", path);
        int fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            int e = errno;
            af->tmp[0] = 0;
            return mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': cannot create a temporary file next to it: %s", path,
                                strerror(e));
        }
        af->f = fdopen(fd, "wb");
        if (!af->f) {
            int e = errno;
            close(fd);
            unlink(af->tmp);
            af->tmp[0] = 0;
            return mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': %s", path, strerror(e));
        }
        return MMCR_OK;
    }
    af->tmp[0] = 0;
    return mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': no free temporary file name", path);
}

/* Best effort: make the rename itself durable. Failure here does not undo a completed rename. */
static void fsync_parent(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

mmcr_status mmcr_atomic_commit(mmcr_atomic_file *af, mmcr_err *err) {
    MMCR_ASSERT(af);
    if (!af->f) return mmcr_err_set(err, MMCR_ERR_ARG, "cannot commit '%s': the file is not open", af->path);
    FILE *f = af->f;
    af->f = NULL;
    const char *what = NULL;
    int e = 0;
    if (fflush(f) != 0 || ferror(f)) {
        what = "write failed";
        e = errno;
    } else if (fsync(fileno(f)) != 0) {
        what = "fsync failed";
        e = errno;
    }
    if (fclose(f) != 0 && !what) {
        what = "close failed";
        e = errno;
    }
    if (!what && rename(af->tmp, af->path) != 0) {
        what = "rename failed";
        e = errno;
    }
    if (what) {
        unlink(af->tmp);
        af->tmp[0] = 0;
        return mmcr_err_set(err, MMCR_ERR_IO, "cannot write '%s': %s: %s (the previous file, if any, is unchanged)", af->path,
                            what, e ? strerror(e) : "stream error");
    }
    af->tmp[0] = 0;
    fsync_parent(af->path);
    return MMCR_OK;
}

void mmcr_atomic_abort(mmcr_atomic_file *af) {
    if (!af) return;
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
    }
    if (af->tmp[0]) {
        unlink(af->tmp);
        af->tmp[0] = 0;
    }
}

mmcr_status mmcr_make_dirs(const char *path, mmcr_err *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return mmcr_err_set(err, MMCR_ERR_ARG, "folder path too long: '%.64s...'", path);
    for (char *q = buf + 1; *q; q++) {
        if (*q != '/') continue;
        *q = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return mmcr_err_set(err, MMCR_ERR_IO, "cannot create folder '%s': %s", buf, strerror(errno));
        *q = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return mmcr_err_set(err, MMCR_ERR_IO, "cannot create folder '%s': %s", buf, strerror(errno));
    return MMCR_OK;
}
