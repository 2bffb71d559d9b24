// SPDX-License-Identifier: MIT
/*
 * Uncompressed copies of debug files, kept in a cache by build-id.
 *
 * Debian (and most distributions) ship debug files with SHF_COMPRESSED sections. libdw
 * inflates every compressed debug section into malloc'ed memory when it opens such a file:
 * about 10 MiB of anonymous memory for libc's alone, held for as long as the file is open,
 * even though a profile touches a few dozen of its 4,000 compilation units. An uncompressed
 * copy is mapped by libdw as it is, so only the pages a lookup reads are resident, and they
 * are clean page cache the kernel can take back.
 *
 * The copy is written once per build-id (later runs reuse it), section by section through a
 * 64 KiB window, so making it costs no more memory than reading it. zlib and zstd sections
 * are inflated (libdw 0.188 cannot read zstd ones at all: through the copy it can);
 * everything else is copied byte for byte. Program headers are dropped (a debug file's
 * describe the original binary's layout, and nothing here reads them). The cache is kept
 * under a size cap, oldest first out.
 */
#define _GNU_SOURCE /* mkostemp */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "lib/cache_dir.h"
#include "lib/safe_open.h"
#include "symbol_internal.h"

#ifndef ELFCOMPRESS_ZSTD
#define ELFCOMPRESS_ZSTD 2 /* glibc < 2.37 headers */
#endif

#define CHUNK (64u * 1024)
#define MAX_SECTIONS 65280u /* below SHN_LORESERVE: no extended numbering */
#define MAX_INFLATED (4ull << 30)
/* DWARF inflates 3-5x; a section that claims far more is a compression bomb, which would
 * fill the disk */
#define MAX_RATIO 32
/* Section alignment kept in the copy (debug sections use 1-8). A larger one (2^40, say)
 * made the copy a sparse file of that size; such a file is read as it is instead. */
#define MAX_ALIGN 4096u

struct copy_ctx {
	int src, dst;
	uint64_t src_size;
	unsigned char *in, *out;
};

static int copy_raw(struct copy_ctx *c, uint64_t from, uint64_t len, uint64_t to)
{
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		int err = ap_pread_full(c->src, c->in, n, from);

		if (!err)
			err = ap_pwrite_full(c->dst, c->in, n, to);
		if (err)
			return err;
		from += n;
		to += n;
		len -= n;
	}
	return 0;
}

static int inflate_zlib(struct copy_ctx *c, uint64_t from, uint64_t len, uint64_t to,
			uint64_t want)
{
	z_stream z = { 0 };
	uint64_t produced = 0;
	int zr = Z_OK, err = 0;

	if (inflateInit(&z) != Z_OK)
		return -ENOMEM;
	while (zr != Z_STREAM_END) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;

		if (!n) {
			err = -EBADMSG; /* the stream ends early */
			break;
		}
		err = ap_pread_full(c->src, c->in, n, from);
		if (err)
			break;
		from += n;
		len -= n;
		z.next_in = c->in;
		z.avail_in = (uInt)n;
		do {
			size_t got;

			z.next_out = c->out;
			z.avail_out = CHUNK;
			zr = inflate(&z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
				err = -EBADMSG;
				break;
			}
			got = CHUNK - z.avail_out;
			if (produced + got > want) {
				err = -EBADMSG; /* more than the header promised */
				break;
			}
			err = ap_pwrite_full(c->dst, c->out, got, to + produced);
			produced += got;
		} while (!err && zr != Z_STREAM_END && z.avail_out == 0);
		if (err)
			break;
	}
	inflateEnd(&z);
	if (!err && produced != want)
		err = -EBADMSG;
	return err;
}

static int inflate_zstd(struct copy_ctx *c, uint64_t from, uint64_t len, uint64_t to,
			uint64_t want)
{
	ZSTD_DStream *z = ZSTD_createDStream();
	uint64_t produced = 0;
	size_t zr = 1;
	int err = 0;

	if (!z)
		return -ENOMEM;
	ZSTD_initDStream(z);
	while (!err && zr != 0) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		ZSTD_inBuffer ib = { c->in, n, 0 };

		if (!n) {
			err = -EBADMSG;
			break;
		}
		err = ap_pread_full(c->src, c->in, n, from);
		from += n;
		len -= n;
		while (!err && ib.pos < ib.size) {
			ZSTD_outBuffer ob = { c->out, CHUNK, 0 };

			zr = ZSTD_decompressStream(z, &ob, &ib);
			if (ZSTD_isError(zr) || produced + ob.pos > want) {
				err = -EBADMSG;
				break;
			}
			err = ap_pwrite_full(c->dst, c->out, ob.pos, to + produced);
			produced += ob.pos;
			if (zr == 0)
				break;
		}
	}
	ZSTD_freeDStream(z);
	if (!err && produced != want)
		err = -EBADMSG;
	return err;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return a > 1 ? (v + a - 1) / a * a : v;
}

/* off aligned to a, or -ENOTSUP for an alignment the copy does not keep */
static int align_to(uint64_t *off, uint64_t a)
{
	if (a > MAX_ALIGN)
		return -ENOTSUP;
	*off = align_up(*off, a);
	return 0;
}

/* Write the uncompressed image of the source into dst: sections in index order, then the
 * section headers. */
static int write_image(struct copy_ctx *c, const Elf64_Ehdr *eh, Elf64_Shdr *sh, size_t n)
{
	uint64_t off = sizeof(*eh), total = 0, raw = 0;
	Elf64_Ehdr out = *eh;
	int err = 0;

	for (size_t i = 1; i < n && !err; i++) {
		Elf64_Shdr *s = &sh[i];
		Elf64_Chdr ch;

		if (s->sh_type == SHT_NOBITS || !s->sh_size) {
			s->sh_offset = off;
			continue;
		}
		if (!(s->sh_flags & SHF_COMPRESSED)) {
			/* sections do not overlap: more bytes than the file has means headers
			 * that list the same bytes many times (a copy of size x count) */
			raw += s->sh_size;
			if (raw > c->src_size)
				return -EBADMSG;
			err = align_to(&off, s->sh_addralign);
			if (err)
				return err;
			err = copy_raw(c, s->sh_offset, s->sh_size, off);
			s->sh_offset = off;
			off += s->sh_size;
			continue;
		}
		if (s->sh_size < sizeof(ch))
			return -EBADMSG;
		err = ap_pread_full(c->src, &ch, sizeof(ch), s->sh_offset);
		if (err)
			return err;
		total += ch.ch_size;
		if (total > MAX_INFLATED || total > MAX_RATIO * c->src_size + (1u << 20))
			return -EFBIG; /* a compression bomb, or not a debug file */
		err = align_to(&off, ch.ch_addralign);
		if (err)
			return err;
		if (ch.ch_type == ELFCOMPRESS_ZLIB)
			err = inflate_zlib(c, s->sh_offset + sizeof(ch), s->sh_size - sizeof(ch),
					   off, ch.ch_size);
		else if (ch.ch_type == ELFCOMPRESS_ZSTD)
			err = inflate_zstd(c, s->sh_offset + sizeof(ch), s->sh_size - sizeof(ch),
					   off, ch.ch_size);
		else
			err = -ENOTSUP;
		s->sh_offset = off;
		s->sh_size = ch.ch_size;
		s->sh_addralign = ch.ch_addralign;
		s->sh_flags &= ~(uint64_t)SHF_COMPRESSED;
		off += ch.ch_size;
	}
	if (err)
		return err;
	off = align_up(off, 8);
	out.e_phoff = 0;
	out.e_phnum = 0;
	out.e_shoff = off;
	err = ap_pwrite_full(c->dst, sh, n * sizeof(*sh), off);
	if (!err)
		err = ap_pwrite_full(c->dst, &out, sizeof(out), 0);
	return err;
}

/* The section headers of a 64-bit native-endian ELF with at least one compressed section.
 * -ENODATA: nothing is compressed (use the file as it is); -ENOTSUP: a layout this does not
 * rewrite (libdw reads it the usual way). */
static int read_headers(int fd, Elf64_Ehdr *eh, Elf64_Shdr **out, size_t *n)
{
	Elf64_Shdr *sh;
	bool any = false;
	int err;

	err = ap_pread_full(fd, eh, sizeof(*eh), 0);
	if (err)
		return err;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB :
										 ELFDATA2MSB))
		return -ENOTSUP;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || !eh->e_shnum || eh->e_shnum > MAX_SECTIONS ||
	    eh->e_shstrndx >= eh->e_shnum)
		return -ENOTSUP;
	sh = calloc(eh->e_shnum, sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	err = ap_pread_full(fd, sh, eh->e_shnum * sizeof(*sh), eh->e_shoff);
	for (size_t i = 1; !err && i < eh->e_shnum; i++)
		any |= sh[i].sh_type != SHT_NOBITS && (sh[i].sh_flags & SHF_COMPRESSED);
	if (!err && !any)
		err = -ENODATA;
	if (err) {
		free(sh);
		return err;
	}
	*out = sh;
	*n = eh->e_shnum;
	return 0;
}

int ap_debug_inflate(int src_fd, const char *build_id, const char *dir, uint64_t cap_bytes,
		     char *out, size_t out_len, uint64_t *untrusted)
{
	struct copy_ctx c = { .src = src_fd, .dst = -1 };
	char tmp[PATH_MAX], name[2 * AP_BUILD_ID_MAX + 8];
	Elf64_Shdr *sh = NULL;
	Elf64_Ehdr eh;
	struct stat st;
	size_t n = 0;
	int err, fd;

	if (!build_id || !ap_cache_valid_id(build_id, AP_BUILD_ID_MAX) || !dir || !*dir)
		return -EINVAL;
	snprintf(name, sizeof(name), "%s.debug", build_id);
	if (snprintf(out, out_len, "%s/%s", dir, name) >= (int)out_len)
		return -ENAMETOOLONG;
	err = read_headers(src_fd, &eh, &sh, &n);
	if (err)
		return err;
	fd = ap_path_untrusted(AT_FDCWD, out, AP_OPEN_NOFOLLOW | AP_OPEN_OWNED, 0, NULL);
	if (fd >= 0) {
		/* made by an earlier run (or another agent): mark it recently used */
		close(fd);
		utimensat(AT_FDCWD, out, NULL, AT_SYMLINK_NOFOLLOW);
		goto done;
	}
	/* someone else's entry under our name: not read, replaced by the rename below */
	if (fd != -ENOENT && untrusted)
		(*untrusted)++;
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, build_id) >= (int)sizeof(tmp)) {
		err = -ENAMETOOLONG;
		goto done;
	}
	c.in = malloc(CHUNK);
	c.out = malloc(CHUNK);
	if (!c.in || !c.out) {
		err = -ENOMEM;
		goto done;
	}
	if (fstat(src_fd, &st)) {
		err = -errno;
		goto done;
	}
	c.src_size = (uint64_t)st.st_size;
	c.dst = mkostemp(tmp, O_CLOEXEC);
	if (c.dst < 0) {
		err = -errno;
		goto done;
	}
	err = write_image(&c, &eh, sh, n);
	if (!err && fchmod(c.dst, 0644))
		err = -errno;
	/* another agent may have made it meanwhile: renaming over it is harmless */
	if (!err && rename(tmp, out))
		err = -errno;
	if (err)
		unlink(tmp);
	else
		ap_cache_prune(dir, ".debug", cap_bytes, name);
done:
	if (c.dst >= 0)
		close(c.dst);
	free(c.in);
	free(c.out);
	free(sh);
	return err;
}
