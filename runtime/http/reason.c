/*
 * Reason phrases for status lines. They live with the HTTP wire code rather
 * than with the server because anything that writes a status line (the
 * server's own refusals, handlers building a response head) needs the same
 * phrases, and HTTP/1.1 clients may print them: one table keeps them equal.
 */
#include "http/http.h"

const char *sl_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default:
        /* RFC 9112 4: the phrase carries no meaning, but a class name reads
         * better in a client's log than an empty one. */
        return status < 300 ? "OK" : status < 400 ? "Redirection" : status < 500 ? "Client Error"
                                                                     : "Server Error";
    }
}
