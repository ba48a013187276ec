# Copyright (c) mmuld contributors. All rights reserved.
