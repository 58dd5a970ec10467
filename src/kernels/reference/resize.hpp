// Placeholder for the resize reference kernels.
#pragma once
