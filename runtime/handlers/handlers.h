/*
 * Fixed endpoints that answer from the gateway's own state, one file each:
 * health (healthz.c), the model list (models.c), Prometheus metrics
 * (metrics.c), the admin API (admin.c), stored Responses objects
 * (responses.c).
 * They are rows of the endpoint table (proxy/dispatch.c) like the
 * inference endpoints, and share only the JSON response helper below.
 */
#ifndef SLUICE_HANDLERS_H
#define SLUICE_HANDLERS_H

#include <jansson.h>

#include "proxy/dispatch.h"

void sl_handle_healthz(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                       size_t len);
void sl_handle_service(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                       size_t len);
void sl_handle_models(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                      size_t len);
void sl_handle_metrics(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                       size_t len);
void sl_handle_responses(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                         size_t len);
void sl_handle_admin(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                     size_t len);

/* A 200 with `body` (consumed) as compact JSON, member order kept. */
void sl_handlers_respond_json(sl_conn *c, json_t *body);

#endif
