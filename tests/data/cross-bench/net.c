/* Needs <sys/socket.h>, which bare-metal C libraries lack: skipped there. */
#include <sys/socket.h>

int open_stream(void)
{
    return socket(AF_INET, SOCK_STREAM, 0);
}
