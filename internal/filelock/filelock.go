// Package filelock serializes processes on a lock file: "opkssh add" and "opkssh remove" editing
// one policy file, and the logins of one key ("opkssh login --if-needed", which ssh may start
// several times at once).
//
// The lock is an flock(2) on a separate file that is never replaced, so it outlives the atomic
// renames of the file it protects. flock locks belong to the open file description: two Locks of
// one path exclude each other even within one process, and the kernel releases a lock when its
// process dies, so a crash leaves nothing to clean up (the lock file stays, empty).
package filelock
