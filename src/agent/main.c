// SPDX-License-Identifier: MIT
/* aperture-agent: the collector. */
#include "agent.h"

int main(int argc, char **argv)
{
	return ap_agent_main(argc, argv, "aperture-agent");
}
