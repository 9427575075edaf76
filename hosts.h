/*
 * hosts.h - looking a host name up in /etc/hosts, never in DNS.
 *
 * Owns: the listener matching's and --check's view of /etc/hosts.
 * Never resolves through DNS or NSS modules.
 */
#ifndef POSTMASTER_HOSTS_H
#define POSTMASTER_HOSTS_H

/* Fills up to n numeric addresses (out may be NULL when n is 0) and
 * returns how many lines named name. */
int hosts_lookup(const char *name, char (*out)[64], int n);

#endif
