/** @file proxystream.h
 *  proxystream: stream proxies instead of data between MPI ranks.
 *  Umbrella header: includes every public header. */
#ifndef PROXYSTREAM_H
#define PROXYSTREAM_H

#include "proxystream/common.h"
#include "proxystream/status.h"
#include "proxystream/proxy.h"
#include "proxystream/pubsub.h"
#include "proxystream/store.h"
#include "proxystream/stats.h"
#include "proxystream/log.h"
#include "proxystream/attach.h"
#if __has_include("proxystream/stream.h")
#include "proxystream/stream.h"
#endif

#endif
