// SPDX-License-Identifier: MIT
#include <string.h>

#include "elf_util.h"

Elf_Scn *ap_elf_find_section(Elf *elf, const char *name, GElf_Shdr *sh)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *n;

		if (!gelf_getshdr(scn, sh))
			continue;
		n = elf_strptr(elf, shstrndx, sh->sh_name);
		if (n && !strcmp(n, name))
			return sh->sh_type == SHT_NOBITS ? NULL : scn;
	}
	return NULL;
}
