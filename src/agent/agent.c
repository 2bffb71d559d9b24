/* agent run loop: in progress */
