/* What tests/lint/no_shell_strings.py must catch (never compiled). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int run_it(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	pclose(f);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	return system(cmd);
}
