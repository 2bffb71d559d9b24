/* SPDX-License-Identifier: MIT */
/* Small libelf helpers shared by the unwinder and the symbolizer. */
#ifndef AP_ELF_UTIL_H
#define AP_ELF_UTIL_H

#include <gelf.h>

/* The section named `name` with its header in *sh, or NULL when the file has none or it has
 * no bytes in the file (SHT_NOBITS: a debug file's stand-in for a stripped section). */
Elf_Scn *ap_elf_find_section(Elf *elf, const char *name, GElf_Shdr *sh);

#endif
