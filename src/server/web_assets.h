/* SPDX-License-Identifier: MIT */
/* The web UI's static files (web/), built into the aggregator by cmake/web_assets.cmake. */
#ifndef AP_WEB_ASSETS_H
#define AP_WEB_ASSETS_H

#include <stddef.h>
#include <stdint.h>

struct ap_web_asset {
	const char *path;	  /* "/index.html", "/app.js", ... */
	const char *content_type; /* "text/html; charset=utf-8", ... */
	const uint8_t *data;
	size_t len;
};

/* The asset served at `path` ("/" is "/index.html"), or NULL. */
const struct ap_web_asset *ap_web_asset_find(const char *path);

#endif
