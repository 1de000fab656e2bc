/* mapped_file.c — read-only memory mapping of a whole file. */
#include "util/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

tfm_status tfm_open_regular_file(const char *path, int *fd_out)
{
    *fd_out = -1;
    if (!path || !*path)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "no file path given");
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. */
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return tfm_error(TFM_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return tfm_error(TFM_E_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return tfm_error(TFM_E_IO, "%s: is a directory, expected a file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tfm_error(TFM_E_IO, "%s: not a regular file (a device, pipe or socket cannot be read as a model)",
                         path);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *fd_out = fd;
    return TFM_OK;
}

int tfm_path_exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

tfm_status tfm_map_file(const char *path, tfm_mapped_file *out)
{
    if (!out)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "tfm_map_file: out is NULL");
    memset(out, 0, sizeof(*out));
    if (!path || !*path)
        return tfm_error(TFM_E_INVALID_ARGUMENT, "no file path given");

    int fd;
    tfm_status st_open = tfm_open_regular_file(path, &fd);
    if (st_open != TFM_OK)
        return st_open;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return tfm_error(TFM_E_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return tfm_error(TFM_E_IO, "%s: file of %lld bytes does not fit in this address space", path,
                         (long long)st.st_size);
    }

    /* mmap of length 0 fails with EINVAL; an empty file is a valid (empty) byte range. */
    if (st.st_size == 0) {
        close(fd);
        static const unsigned char empty[1];
        out->data = empty;
        out->size = 0;
        out->is_mapped = 0;
        return TFM_OK;
    }

    size_t size = (size_t)st.st_size;
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd); /* the mapping keeps its own reference to the file */
    if (p == MAP_FAILED)
        return tfm_error(TFM_E_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(err));

    out->data = p;
    out->size = size;
    out->is_mapped = 1;
    return TFM_OK;
}

void tfm_unmap_file(tfm_mapped_file *f)
{
    if (!f)
        return;
    if (f->is_mapped && f->data)
        munmap((void *)f->data, f->size);
    memset(f, 0, sizeof(*f));
}
