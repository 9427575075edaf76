/*
 * hosts.c - names from /etc/hosts (see hosts.h).
 *
 * Owns: reading /etc/hosts line by line, comments and case aside. Never
 * asks DNS or NSS: a session matches its listener with this and nothing
 * that could wait on the network.
 */
#include "hosts.h"
#include "fmt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Looks a name up in /etc/hosts; fills up to n numeric addresses. */
int hosts_lookup(const char *name, char (*out)[64], int n)
{
	FILE *f = fopen("/etc/hosts", "re");
	if (!f)
		return 0;
	char line[1024];
	int found = 0;
	while (fgets(line, sizeof line, f)) {
		char *save = NULL;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *ip = strtok_r(line, " \t\r\n", &save);
		if (!ip)
			continue;
		char *h;
		while ((h = strtok_r(NULL, " \t\r\n", &save)))
			if (!strcasecmp(h, name)) {
				if (found < n)
					fmt_snprintf(out[found], 64, "%s", ip);
				found++;
				break;
			}
	}
	fclose(f);
	return found;
}

