// http_api: the daemon's HTTP API (design.md, "HTTP API"), for the code that
// uses all of it (the service, the CLI's file source, the tests). It is in
// three parts:
//  - api/api_handler.h: ApiHandler decides what a request means (routing,
//    authorisation, parameter checks, the store queries) with no socket
//    involved, and ApiBackend is what it asks of the daemon;
//  - api/replies.h: every answer, status, content type and body, is built there;
//  - api/http_server.h: HttpApi is the listener (connection and size limits,
//    deadlines, keep-alive, streamed replies), which hands each request to an
//    ApiHandler.
#pragma once

#include "api/api_handler.h"
#include "api/http_options.h"
#include "api/http_server.h"
