/* mapped_file.h — read-only memory mapping of a whole file (internal). */
#ifndef TFM_LIB_UTIL_MAPPED_FILE_H
#define TFM_LIB_UTIL_MAPPED_FILE_H

#include <stddef.h>

#include "tfm/tfm.h"

typedef struct tfm_mapped_file {
    const void *data;
    size_t size;
    int is_mapped;  /* 1: munmap on close; 0: empty file or caller memory */
} tfm_mapped_file;

/* Maps `path` read-only. TFM_E_IO with the OS reason on failure. A directory is TFM_E_IO too. */
tfm_status tfm_map_file(const char *path, tfm_mapped_file *out);
void tfm_unmap_file(tfm_mapped_file *f);

/* Opens `path` for reading if it is a regular file; a directory, FIFO, socket or device is
 * TFM_E_IO without blocking. The caller closes *fd_out. */
tfm_status tfm_open_regular_file(const char *path, int *fd_out);

/* 1 if something exists at `path` (without opening it: a FIFO would block). */
int tfm_path_exists(const char *path);

#endif
