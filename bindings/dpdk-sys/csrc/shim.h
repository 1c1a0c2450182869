/*
 * Out-of-line wrappers for DPDK's `static inline` functions and thread-local variables.
 *
 * bindgen cannot emit bindings that call a `static inline` function (it has no symbol) nor read a
 * `__thread` variable such as `per_lcore__rte_errno`, so each one gets a real function here,
 * compiled by build.rs with the same flags pkg-config gives for libdpdk. The names are the DPDK
 * names prefixed with `shim_` so that it is always clear which side of the shim a call is on.
 */
#ifndef DPDK_SYS_SHIM_H
#define DPDK_SYS_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

/* rte_errno.h: reads `per_lcore__rte_errno` of the calling thread. */
int shim_rte_errno(void);
/* rte_errno.h: sets `per_lcore__rte_errno` of the calling thread (tests use it). */
void shim_rte_errno_set(int value);

/* rte_lcore.h */
unsigned shim_rte_lcore_id(void);

/* rte_cycles.h */
uint64_t shim_rte_get_tsc_cycles(void);
uint64_t shim_rte_get_tsc_hz(void);

/* rte_ethdev.h */
uint16_t shim_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
			       uint16_t nb_pkts);
uint16_t shim_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
			       uint16_t nb_pkts);

/* rte_mbuf.h */
struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp);
int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs,
				unsigned count);
void shim_rte_pktmbuf_free(struct rte_mbuf *m);
void shim_rte_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned count);
uint16_t shim_rte_mbuf_refcnt_read(const struct rte_mbuf *m);
uint16_t shim_rte_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);
void shim_rte_pktmbuf_attach(struct rte_mbuf *mi, struct rte_mbuf *m);
void shim_rte_pktmbuf_detach(struct rte_mbuf *m);
int shim_rte_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail);
char *shim_rte_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int shim_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
char *shim_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *shim_rte_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
uint16_t shim_rte_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t shim_rte_pktmbuf_tailroom(const struct rte_mbuf *m);
struct rte_mbuf *shim_rte_mbuf_from_indirect(struct rte_mbuf *mi);
void *shim_rte_pktmbuf_mtod(struct rte_mbuf *m);
int shim_rte_mbuf_is_indirect(const struct rte_mbuf *m);


#endif
