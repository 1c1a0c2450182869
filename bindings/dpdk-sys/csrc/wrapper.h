/* Every DPDK header the safe layer uses, plus the shim's declarations. bindgen reads this file. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_lcore.h>
#include <rte_errno.h>
#include <rte_cycles.h>
#include <rte_ether.h>

#include "shim.h"
