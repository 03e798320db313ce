/*
 * inwatch.h - inotify watches that tell a freshness check whether the inputs
 * it walked last time can have changed since.
 *
 * A freshness check walks every input folder and stats every file
 * (inputs.h): its cost grows with the number of inputs (15 ms per open with
 * 5,000 files).  With an inwatch, a successful walk records what it depended
 * on (struct inwatch_deps), and the next check of the same target skips the
 * walk when nothing of that changed since the walk began.
 *
 * What a recording depends on (see inputs.h, input_spec.observe):
 *  - a watch on every folder the walk listed (each walk root and every folder
 *    below it, including folders reached through a symlink: the watch is on
 *    the target).  A folder's watch reports changes of its entries' contents,
 *    attributes and names, and of the folder itself (deleted, moved);
 *  - for every symlink the walk followed, and for a single-file root
 *    (systems.json), a watch on every folder in which its resolution looks a
 *    name up (as realpath resolves it, through nested links): retargeting a
 *    link anywhere on the way, or editing the file it ends at, is an event;
 *  - a watch on every input file with more than one hard link: a write
 *    through another name notifies the folder of that name, not ours;
 *  - the (device, inode) each root path resolved to, or that it was missing:
 *    re-checked with a stat of each root at every check, which catches what
 *    no watch below it sees (an ancestor folder of a root renamed or swapped,
 *    a missing root created, a root symlink retargeted);
 *  - the token: the event sequence number when the recording began, taken
 *    before the walk read anything; watches are added before the folder they
 *    watch is listed.
 *
 * The promise of inwatch_unchanged: it drains the inotify queue (without
 * blocking) and answers true only when no event arrived for any watch of the
 * recording after its token, the kernel's queue did not overflow after it,
 * no watch of the recording was lost (its folder deleted or unmounted), every
 * root still resolves to what it resolved to, the scope (the folder the
 * caller walks, e.g. the benchmark's place in the tree) is the same, and
 * every watch could be set up on a filesystem whose changes inotify reports.
 * A change completed (its system call returned) before inwatch_unchanged was
 * called has queued its event by then: the kernel queues it inside that
 * system call.
 *
 * What inotify does not report, hence what a skipped walk misses: writes
 * through a shared mmap of an input file (no event until the file is closed
 * or its attributes change), and changes made on another machine to a
 * network or FUSE filesystem.  Folders on NFS, SMB/CIFS, 9p, Ceph, AFS,
 * Lustre, GFS2/OCFS2, Coda, OrangeFS, vboxsf or FUSE (which includes
 * virtiofs) are never trusted: a recording that met one always walks
 * (inwatch_fs_trusted).  When a watch cannot be set up (the limit
 * fs.inotify.max_user_watches, or another error), the recording is not
 * trusted either and the target is walked at every check.  Each of these
 * reasons is logged once per process.
 *
 * Thread safety: one inwatch is shared by every target (one inotify
 * descriptor, one lock); a recording belongs to its caller (the builder keeps
 * it under the record's check_lock).  Watches are never removed: a folder
 * watched once stays watched until it is deleted.
 */
#ifndef SEBSFS_INWATCH_H
#define SEBSFS_INWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "inputs.h"

struct inwatch;
struct inwatch_deps;

/* Opens the inotify instance.  Returns 0 or -errno (inotify_init1 failed). */
int inwatch_new(struct inwatch **out);
void inwatch_free(struct inwatch *w);

/* Starts recording the walk of a target whose folder is scope (compared by
 * inwatch_unchanged).  Returns NULL when out of memory (walk unrecorded). */
struct inwatch_deps *inwatch_begin(struct inwatch *w, const char *scope);

/* The input_spec.observe callback: ctx is the recording of inwatch_begin. */
void inwatch_observe(void *ctx, enum input_observed what, const char *path);

/* True when nothing the recording depends on can have changed since it
 * began (see above).  d may be NULL (false).  Otherwise *why (may be NULL)
 * gets a static text saying why the inputs must be walked again. */
bool inwatch_unchanged(const struct inwatch_deps *d, const char *scope, const char **why);

void inwatch_deps_free(struct inwatch_deps *d);

/* Whether inotify reports every change on a filesystem of this statfs
 * f_type; *name (may be NULL) gets its name when it does not. */
bool inwatch_fs_trusted(int64_t f_type, const char **name);

#endif
