// SPDX-License-Identifier: MIT
/* Continuous mode's pure parts: cgroup paths as labels, the push request (id, query,
 * multipart body), the spool (atomic files, oldest first, the bound, bad files), the
 * interval profile's relabeled copy and the continuous-mode flags. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/cgroup.h"
#include "agent/collector.h"
#include "agent/interval.h"
#include "agent/push.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void parse_case(const char *path, const char *want_id, const char *want_unit)
{
	char id[AP_CONTAINER_ID_LEN + 1], unit[AP_UNIT_MAX];

	ap_cgroup_parse(path, id, sizeof(id), unit, sizeof(unit));
	assert_string_equal(id, want_id);
	assert_string_equal(unit, want_unit);
}

static void test_cgroup_parse(void **state)
{
	(void)state;
	parse_case("/", "", "");
	parse_case("/system.slice/nginx.service", "", "nginx.service");
	parse_case("/user.slice/user-1000.slice/session-2.scope", "", "session-2.scope");
	parse_case("/system.slice/docker-" HEX64 ".scope", HEX64, "");
	parse_case("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/"
		   "cri-containerd-" HEX64 ".scope",
		   HEX64, "");
	parse_case("/machine.slice/libpod-" HEX64 ".scope/container", HEX64, "");
	parse_case("/system.slice/crio-" HEX64 ".scope", HEX64, "");
	parse_case("/docker/" HEX64, HEX64, "");
	parse_case("/kubepods/besteffort/pod12-34/" HEX64, HEX64, "");
	/* a service inside a container: both */
	parse_case("/docker/" HEX64 "/system.slice/cron.service", HEX64, "cron.service");
	/* not ids: wrong length, upper case, a prefix we do not know */
	parse_case("/docker-0123.scope", "", "docker-0123.scope");
	parse_case("/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "",
		   "");
	parse_case("/weird-" HEX64 ".scope", "", "weird-" HEX64 ".scope");
	/* the innermost wins */
	parse_case("/a.service/b.service", "", "b.service");
}

static void test_url_encode(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(ap_push_url_encode("host=db-1.x_y~", out, sizeof(out)), 0);
	assert_string_equal(out, "host%3Ddb-1.x_y~");
	assert_int_equal(ap_push_url_encode("a b&c/\xff", out, sizeof(out)), 0);
	assert_string_equal(out, "a%20b%26c%2F%FF");
	assert_int_equal(ap_push_url_encode("abc", out, 3), -ENOSPC);
}

static struct ap_push *build(const char *profile, size_t len)
{
	struct ap_push_label labels[] = {{"host", "h1"}, {"team.name", "a b"}};
	struct ap_push_parts parts = {.profile = profile,
				      .profile_len = len,
				      .tables = "{\"t\":1}",
				      .tables_len = 7,
				      .agent = "{\"pushes_ok\":3}",
				      .agent_len = 15};
	struct ap_push *p = NULL;

	assert_int_equal(ap_push_build(&p, "cpu", 100, 200, labels, 2, &parts), 0);
	return p;
}

static void test_push_build(void **state)
{
	struct ap_push *p = build("\x1f\x8b profile", 10), *q = build("x", 1);
	char boundary[80], *b;

	(void)state;
	assert_int_equal(strlen(p->id), AP_PUSH_ID_LEN);
	assert_string_not_equal(p->id, q->id);
	assert_true(strncmp(p->query, "push_id=", 8) == 0);
	assert_non_null(strstr(p->query, p->id));
	assert_non_null(strstr(p->query, "&from=100&until=200"));
	assert_non_null(strstr(p->query, "&label=host%3Dh1"));
	assert_non_null(strstr(p->query, "&label=team.name%3Da%20b"));
	assert_non_null(strstr(p->query, "&label=mode%3Dcpu"));
	assert_true(sscanf(p->content_type, "multipart/form-data; boundary=%79s", boundary) == 1);
	/* the parts in order, each framed by the boundary, the body closed */
	b = p->body;
	assert_true(strncmp(b, "--", 2) == 0 && strncmp(b + 2, boundary, strlen(boundary)) == 0);
	assert_non_null(strstr(b, "name=\"profile\"; filename=\"profile.pb.gz\"\r\nContent-Type: "
				  "application/octet-stream\r\n\r\n\x1f\x8b profile\r\n--"));
	assert_non_null(strstr(b, "name=\"tables\""));
	assert_non_null(strstr(b, "name=\"agent\"\r\nContent-Type: application/json\r\n\r\n"
				  "{\"pushes_ok\":3}\r\n"));
	assert_int_equal(memcmp(p->body + p->body_len - strlen(boundary) - 6, "--", 2), 0);
	assert_int_equal(memcmp(p->body + p->body_len - 4, "--\r\n", 4), 0);
	ap_push_free(p);
	ap_push_free(q);
}

static char dir[64];

static int mkdir_tmp(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ap_spool_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int rm_tmp(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t count_files(const char *d)
{
	char cmd[160];
	FILE *f;
	size_t n = 0;
	int c;

	snprintf(cmd, sizeof(cmd), "ls -A '%s'", d);
	f = popen(cmd, "r");
	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	pclose(f);
	return n;
}

static void test_spool(void **state)
{
	char sub[96], err[256];
	struct ap_spool *s;
	struct ap_push *p[3], *got = NULL;
	uint64_t dropped = 0;
	struct stat st;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/spool", dir);
	s = ap_spool_open(sub, 1 << 20, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	for (int i = 0; i < 3; i++) {
		p[i] = build("profile-bytes", 13);
		assert_int_equal(ap_spool_put(s, p[i], &dropped), 0);
		assert_true(p[i]->spool_name[0]);
	}
	assert_int_equal(ap_spool_count(s), 3);
	assert_int_equal(count_files(sub), 3); /* no temporaries left */
	/* oldest first, read back whole */
	assert_int_equal(ap_spool_oldest(s, &got, &dropped), 0);
	assert_non_null(got);
	assert_string_equal(got->id, p[0]->id);
	assert_string_equal(got->query, p[0]->query);
	assert_string_equal(got->content_type, p[0]->content_type);
	assert_int_equal(got->body_len, p[0]->body_len);
	assert_memory_equal(got->body, p[0]->body, got->body_len);
	ap_spool_remove(s, got);
	ap_push_free(got);
	assert_int_equal(ap_spool_count(s), 2);
	ap_spool_close(s);

	/* a new start sees the same two, oldest first; a corrupt one is dropped, counted */
	{
		char path[256];
		int fd;

		snprintf(path, sizeof(path), "%s/00000000000000000001-%.32s.push", sub,
			 "ffffffffffffffffffffffffffffffff");
		fd = open(path, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "garbage", 7), 7);
		close(fd);
		snprintf(path, sizeof(path), "%s/.tmp-leftover", sub);
		fd = open(path, O_WRONLY | O_CREAT, 0600);
		close(fd);
	}
	s = ap_spool_open(sub, 1 << 20, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(ap_spool_count(s), 3);
	assert_int_equal(count_files(sub), 3); /* the crash's temporary is gone */
	dropped = 0;
	assert_int_equal(ap_spool_oldest(s, &got, &dropped), 0);
	assert_int_equal(dropped, 1);
	assert_string_equal(got->id, p[1]->id);
	ap_push_free(got);

	/* the bound: one more that does not fit pushes the oldest out */
	{
		uint64_t bytes = ap_spool_bytes(s);
		struct ap_spool *small;

		ap_spool_close(s);
		small = ap_spool_open(sub, bytes + 10, err, sizeof(err));
		assert_non_null(small);
		dropped = 0;
		assert_int_equal(ap_spool_put(small, p[2], &dropped), 0);
		assert_int_equal(dropped, 1);
		assert_int_equal(ap_spool_count(small), 2);
		assert_int_equal(ap_spool_oldest(small, &got, &dropped), 0);
		/* p[1] went; p[2]'s first copy is the oldest now */
		assert_string_equal(got->id, p[2]->id);
		ap_push_free(got);
		ap_spool_close(small);
	}
	for (int i = 0; i < 3; i++)
		ap_push_free(p[i]);
}

static void test_spool_refuses_link(void **state)
{
	char link[96], target[96], err[256];

	(void)state;
	snprintf(target, sizeof(target), "%s/real", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	assert_int_equal(mkdir(target, 0700), 0);
	assert_int_equal(symlink(target, link), 0);
	assert_null(ap_spool_open(link, 1 << 20, err, sizeof(err)));
	assert_non_null(strstr(err, "spool directory"));
	assert_int_equal(chmod(target, 0777), 0);
	assert_null(ap_spool_open(target, 1 << 20, err, sizeof(err)));
}

static size_t labeler(void *ctx, uint32_t pid, struct ap_interval_label *out, size_t max)
{
	(void)ctx;
	if (pid != 42 || max < 2)
		return 0;
	out[0] = (struct ap_interval_label){"container_id", HEX64};
	out[1] = (struct ap_interval_label){"unit", "x.service"};
	return 2;
}

static void test_relabel(void **state)
{
	struct ap_profile *p = ap_profile_new(), *q, *fresh;
	struct ap_sample s = {.values = {3, 30}, .pid = 42, .tid = 43};
	uint32_t f[2];
	const struct ap_label *ls;
	size_t n;

	(void)state;
	ap_profile_add_value_type(p, "samples", "count");
	ap_profile_add_value_type(p, "cpu", "nanoseconds");
	ap_profile_set_period(p, "cpu", "nanoseconds", 10);
	ap_profile_set_meta(p, "mode", "cpu");
	f[0] = ap_profile_add_named_frame(p, "leaf", "m", AP_FRAME_USER);
	f[1] = ap_profile_add_named_frame(p, "root", "m", AP_FRAME_USER);
	s.stack = ap_profile_add_stack(p, f, 2);
	s.comm = ap_profile_intern(p, "w");
	assert_int_equal(ap_profile_add_sample(p, &s), 0);
	s.pid = 7;
	s.values[0] = 4;
	assert_int_equal(ap_profile_add_sample(p, &s), 0);

	q = ap_interval_relabel(p, labeler, NULL);
	assert_non_null(q);
	assert_int_equal(ap_profile_nsamples(q), 2);
	assert_int_equal(ap_profile_total(q, 0), 7);
	assert_int_equal(ap_profile_total(q, 1), 60);
	assert_string_equal(ap_profile_get_meta(q, "mode"), "cpu");
	assert_int_equal(ap_profile_period(q), 10);
	for (size_t i = 0; i < 2; i++) {
		const struct ap_sample *qs = ap_profile_sample(q, i);
		const uint32_t *st = ap_profile_stack(q, qs->stack, &n);

		assert_int_equal(n, 2);
		assert_string_equal(ap_profile_str(q, ap_profile_frame(q, st[0])->name), "leaf");
		assert_string_equal(ap_profile_str(q, qs->comm), "w");
		ls = ap_profile_labels(q, qs->labels, &n);
		if (qs->pid == 42) {
			assert_int_equal(n, 2);
			assert_string_equal(ap_profile_str(q, ls[0].key), "container_id");
			assert_string_equal(ap_profile_str(q, ls[0].str), HEX64);
			assert_string_equal(ap_profile_str(q, ls[1].str), "x.service");
		} else {
			assert_int_equal(qs->labels, 0);
		}
	}
	fresh = ap_interval_fresh_profile(p);
	assert_non_null(fresh);
	assert_int_equal(ap_profile_nsamples(fresh), 0);
	assert_int_equal(ap_profile_nvalues(fresh), 2);
	assert_int_equal(ap_profile_period(fresh), 10);
	assert_string_equal(ap_profile_get_meta(fresh, "mode"), "cpu");
	ap_profile_free(fresh);
	ap_profile_free(q);
	ap_profile_free(p);
}

static int parse(struct ap_agent_opts *o, ...)
{
	char *argv[32] = {"agent"};
	int argc = 1;
	va_list ap;

	va_start(ap, o);
	while ((argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	memset(o, 0, sizeof(*o));
	o->prog = "agent";
	return ap_agent_parse_args(argc, argv, o);
}

static void test_options(void **state)
{
	struct ap_agent_opts *o = malloc(sizeof(*o));

	(void)state;
	assert_int_equal(parse(o, "-m", "cpu", NULL), 0);
	assert_int_equal(o->nservers, 0);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a:1/,https://b", "--server",
			       "http://c", "--label", "env=prod", "--label", "k.v_2=x y",
			       "--push-interval", "30s", "--spool-max", "2M", "--shutdown-timeout",
			       "3s", NULL),
			 0);
	assert_int_equal(o->nservers, 3);
	assert_string_equal(o->servers[0], "http://a:1");
	assert_string_equal(o->servers[1], "https://b");
	assert_int_equal(o->nlabels, 2);
	assert_string_equal(o->label_names[1], "k.v_2");
	assert_string_equal(o->label_values[1], "x y");
	assert_int_equal(o->push_interval_ns, 30000000000ULL);
	assert_int_equal(o->spool_max, 2 << 20);
	assert_int_equal(o->shutdown_timeout_ns, 3000000000ULL);
	/* defaults */
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a", NULL), 0);
	assert_int_equal(o->push_interval_ns, 10000000000ULL);
	assert_int_equal(o->spool_max, 256 << 20);
	/* refusals */
	assert_int_equal(parse(o, "-m", "cpu", "--server", "ftp://a", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a,", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a b", NULL), AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--push-interval", "5s", NULL), AP_EXIT_USAGE);
	assert_int_equal(
	    parse(o, "-m", "cpu", "--server", "http://a", "--push-interval", "100ms", NULL),
	    AP_EXIT_USAGE);
	assert_int_equal(
	    parse(o, "-m", "cpu", "--server", "http://a", "--push-interval", "2h", NULL),
	    AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a", "--label", "1x=y", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a", "--label", "x", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a", "--label", "x=", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a", "--label", "mode=x", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(
	    parse(o, "-m", "cpu", "--server", "http://a", "--label", "a=1", "--label", "a=2", NULL),
	    AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a", "-o", "x.svg", NULL),
			 AP_EXIT_USAGE);
	assert_int_equal(parse(o, "-m", "cpu", "--server", "http://a", "--spool-max", "10K", NULL),
			 AP_EXIT_USAGE);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cgroup_parse),
	    cmocka_unit_test(test_url_encode),
	    cmocka_unit_test(test_push_build),
	    cmocka_unit_test_setup_teardown(test_spool, mkdir_tmp, rm_tmp),
	    cmocka_unit_test_setup_teardown(test_spool_refuses_link, mkdir_tmp, rm_tmp),
	    cmocka_unit_test(test_relabel),
	    cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
