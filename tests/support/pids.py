"""A process id no process can have, for records whose owner must read as dead.

The pid of a child that just exited is reused once the kernel's counter wraps (pid_max is
32768 here), and a busy test run wraps it in minutes: a record naming it then reads as
alive. Linux never hands out a pid at or above PID_MAX_LIMIT (4194304 on 64-bit)."""

NEVER_ALIVE_PID = 4_194_304
