/* SPDX-License-Identifier: MIT */
/* Diagnostics to stderr. Library code returns errors; binaries log them once. */
#ifndef AP_LOG_H
#define AP_LOG_H

enum ap_log_level { AP_LOG_ERROR = 0, AP_LOG_WARN, AP_LOG_INFO, AP_LOG_DEBUG };

/* Messages above this level are discarded. Default AP_LOG_WARN; -v raises it. */
void ap_log_set_level(enum ap_log_level level);
enum ap_log_level ap_log_get_level(void);
void ap_log(enum ap_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ap_err(...) ap_log(AP_LOG_ERROR, __VA_ARGS__)
#define ap_warn(...) ap_log(AP_LOG_WARN, __VA_ARGS__)
#define ap_info(...) ap_log(AP_LOG_INFO, __VA_ARGS__)
#define ap_debug(...) ap_log(AP_LOG_DEBUG, __VA_ARGS__)

#endif
